"""Tests for the Misskey integration."""
