"""Singer target for Salesforce Marketing Cloud."""
