"""Calls to action: which CTAs a day creates and closes (`decide`), and the worklist of
the open ones (`worklist`)."""
