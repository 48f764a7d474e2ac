"""The application services ConsentLedger hands each call to, one job each."""
