"""One day of the lifecycle: the exports read once (`load`), where the day starts
(`start`), the day itself (`pipeline`) and why each customer ends where it does
(`explain`)."""
