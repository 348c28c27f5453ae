"""NPS/CSAT/CES surveys, the closed loop on detractors, feedback text analysis."""
