"""The trainer that retraining Jobs run; it also makes the demo models."""
