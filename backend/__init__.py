"""xinfang — multi-tenant 信访 case-handling backend."""
