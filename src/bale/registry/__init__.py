"""Registry: references and a distribution API client."""
