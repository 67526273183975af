"""Notifications: each owner's morning digest of CTAs (`digest`), who gets it where
(`addresses`), and how it is delivered: SMTP, a webhook, .eml files (`channels`)."""
