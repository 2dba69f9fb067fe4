"""Where a capture goes once it is retrieved: the alarm's LogRhythm case (srp.delivery.case),
through LogRhythm's own APIs (srp.delivery.logrhythm).

Above the retrieval core and beside the vendors: the core calls a delivery step it is
given, and never imports this package."""
