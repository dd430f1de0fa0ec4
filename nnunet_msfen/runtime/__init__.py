"""Process-level settings that make CPU training and prediction faster for any network (``cpu_allocator``)."""
