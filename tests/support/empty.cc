// Keeps portico_test_support non-empty.
