"""Identity: who makes a request (users and partner tokens), proven by tokens we issue."""
