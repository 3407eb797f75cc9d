"""The notifier: emails the clinic each new enquiry, from the table's stream."""
