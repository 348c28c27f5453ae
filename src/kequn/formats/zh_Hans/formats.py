"""Simplified Chinese: thousands grouped by three with a comma, as money already was.

Django's zh_Hans formats group by 万 with no separator, so intcomma printed 28986 beside
16,556,413.00; Chinese retail and finance software prints 28,986.
"""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
DECIMAL_SEPARATOR = "."
