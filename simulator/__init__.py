"""A simulated reventix CTI server: seeded, realistic journal entries over TCP or into day.log."""
