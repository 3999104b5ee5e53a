"""Use cases by verb, in flow order: load (capture and book), end of day, report, audit."""
