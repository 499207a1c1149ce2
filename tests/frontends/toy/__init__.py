"""A fourth front-end, written as a newcomer would: a toy numpy framework and its graphaudit front-end."""
