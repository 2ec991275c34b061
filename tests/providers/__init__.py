"""What the pinned providers and the Pulumi engine really do, for the mocks to consult (issue 10)."""
