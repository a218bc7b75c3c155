"""Property-based fuzzing of zerocopy.to / explain over every CPU framework pair (issue 8)."""
