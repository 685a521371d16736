# admin socket and warrenctl fragment
