"""Background services of the server process (crash detection; scheduler and others later)."""
