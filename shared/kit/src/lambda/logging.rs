//! The functions' log setup: one line per event on stdout, as Lambda expects. The level follows
//! `RUST_LOG` with per-target directives (`cardbot=debug,info`; the template's `LogLevel`), else
//! Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`, which Lambda may set by itself for
//! JSON logs), else `info`; `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines.
//! Directives are matched by target prefix, without the regex engine a full env filter carries.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for these settings; unreadable directives fall back to `info`.
pub fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let info = || Targets::new().with_default(LevelFilter::INFO);
    match (rust_log, lambda_level) {
        (Some(directives), _) => Targets::from_str(directives).unwrap_or_else(|_| info()),
        (None, Some(level)) => LevelFilter::from_str(level)
            .map(|level| Targets::new().with_default(level))
            .unwrap_or_else(|_| info()),
        (None, None) => info(),
    }
}

/// Installs the subscriber; a second call does nothing.
pub fn init() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let filter = filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn rust_log_wins_then_the_lambda_level_then_info() {
        let f = filter(Some("debug"), Some("error"));
        assert!(!enabled(&f, "cardbot::store", Level::WARN));
        let f = filter(Some("debug"), None);
        assert!(enabled(&f, "cardbot::store", Level::DEBUG));
        let f = filter(None, Some("cardbot=debug,warn"));
        assert!(enabled(&f, "cardbot::store::dynamo", Level::DEBUG));
        assert!(!enabled(&f, "aws_smithy_runtime", Level::INFO));
        assert!(enabled(&f, "aws_smithy_runtime", Level::WARN));
        let f = filter(None, None);
        assert!(enabled(&f, "cardbot", Level::INFO));
        assert!(!enabled(&f, "cardbot", Level::DEBUG));
    }

    #[test]
    fn unreadable_settings_fall_back_to_info() {
        for f in [filter(Some("loud"), None), filter(None, Some("a=b=c"))] {
            assert!(enabled(&f, "cardbot", Level::INFO));
            assert!(!enabled(&f, "cardbot", Level::DEBUG));
        }
    }
}
