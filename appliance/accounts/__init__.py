"""Who may use the appliance: local accounts, roles, API keys, sessions."""
