//! Raw Feishu request → verified, decrypted, typed inbound message.
