"""HTTP tests for webapp.registrations.views (tests/registrations/ holds the service tests)."""
