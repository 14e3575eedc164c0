package main

func genQuantize() {}
func genQ8_0()     {}
func genQ5_0()     {}
func genQ4K()      {}
func genQ6K()      {}
