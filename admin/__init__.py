"""The command line `pqf-bot`: set up, run and administer the audit bot."""
