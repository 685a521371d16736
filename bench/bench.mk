# benchmark tools fragment
