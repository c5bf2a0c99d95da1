"""Shared host readers (/proc, netlink sock_diag): one place that every stage may use."""
