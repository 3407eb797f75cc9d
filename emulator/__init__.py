"""The AWS emulation the local server, the tests and the benchmark share: moto's server in a thread,
the tables as template.yaml declares them, DynamoDB's atomic transactions, and the notifier's stream."""
