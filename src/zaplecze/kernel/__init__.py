"""The kernel: exact numbers, calendars, problem codes and limits. Imports nothing of ours."""
