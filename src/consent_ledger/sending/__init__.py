"""Send-time decisions: the eligibility rules and the policies they apply."""
