"""Campaigns, channels (email, SMS, WeChat, webhooks), templates, consent-checked sends and holdout measurement."""
