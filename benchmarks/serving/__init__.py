"""The serving benchmark of issue 9: ceiling, load generator, servers, peers, report."""
