"""Shared fixtures: the synthesized speech corpus and the AWS emulator live in their own plugin modules."""

pytest_plugins = ["tests.fixtures_corpus", "tests.fixtures_aws"]
