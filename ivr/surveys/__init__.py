"""Satisfaction callback campaigns (满意度回访)."""
