"""Personal data: the Redactor protocol, Presidio behind it, and the policy applied to chat."""
