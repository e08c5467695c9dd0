//! Card JSON 2.0 builders for every card the bot shows.
