"""The canonical vocabulary every layer shares: tasks, requests, jobs and errors. Imports nothing of roomrender."""
