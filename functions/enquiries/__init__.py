"""enquiries: a serverless backend for the contact forms of static websites."""
