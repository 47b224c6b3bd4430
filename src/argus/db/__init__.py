"""The one SQL database: registry, audit, apps, jobs and prediction records."""
