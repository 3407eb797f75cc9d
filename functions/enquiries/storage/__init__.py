"""Data access: DynamoDB."""
