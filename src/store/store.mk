# store module fragment
