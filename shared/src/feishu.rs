//! Outbound Feishu Open API client.
