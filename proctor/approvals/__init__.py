"""Human approvals: who may approve (the directory), how they are asked (Slack Block Kit), and
how their answers reach the waiting workflow (the vote desk)."""
