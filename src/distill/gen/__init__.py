"""Generation: run a teacher over prompt files (or score given responses), resumably."""
