"""Local Salesforce Marketing Cloud emulator for tests, demos and benchmarks."""
