//! The DynamoDB adapter (aws-sdk-dynamodb): `DynamoStore`.
