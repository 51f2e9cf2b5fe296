"""Real counterparts the tests start: servers, engines, daemons."""
