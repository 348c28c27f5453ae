"""Tickets, queues, SLA policies on a business calendar, inbound and outbound email."""
