"""Makes the project root importable (model/, components/, stacks/) for every test."""
