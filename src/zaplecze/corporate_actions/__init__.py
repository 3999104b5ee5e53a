"""Corporate actions: events -> entitlements -> entries."""
