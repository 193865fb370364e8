"""Plans, limits and subscriptions: what each plan allows, the workspace's billing state, Stripe."""
